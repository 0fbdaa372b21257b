"""Staff commands of `gridbot` (invitations, revocation, API tokens) are added here as they land."""

COMMANDS: list = []
