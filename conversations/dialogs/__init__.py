"""One module per dialog; `conversations.engine` wires them together."""
