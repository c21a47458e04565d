"""Writes: WhatsApp webhook, inbox events, button clicks, auto-close."""
