"""`gridbot token …` commands for the case API are added here."""

COMMANDS: list = []
