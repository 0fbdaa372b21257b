"""The aiohttp application: web chat, case API, Open311, health and metrics."""
