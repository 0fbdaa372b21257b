"""The case store: grids, the matter list, people, cases and their lifecycle.

Nothing here imports from `bot/` or `conversations/`.
"""
