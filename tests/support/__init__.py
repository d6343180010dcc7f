"""Helpers shared by test areas: real servers started on 127.0.0.1 (see servers.py)."""
