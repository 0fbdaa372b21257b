"""Platform adapters (Telegram, web chat), the HTTP server, the dispatcher and the command line."""
