"""PLACEHOLDER (issue 15): routes of this module are being written."""

from fastapi import APIRouter

router = APIRouter()
