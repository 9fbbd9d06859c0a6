"""Reviewing series from the list: rules, replies, the watch bot."""
