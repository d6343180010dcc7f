"""Sub-commands of the `mlops` CLI, one module each.

Each module only parses and prints: it adds its parser (`add_parser`) and calls the room
that does the work (`commands/promote.py` calls `mlops.release.promotion.promote`). The top
room below the entry point (`mlops.cli`): it may import every other room of mlops, and no
room imports it.
"""
