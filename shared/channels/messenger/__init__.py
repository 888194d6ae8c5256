"""Messenger and Instagram messaging (Meta's Messenger Platform): one webhook for Pages and
Instagram accounts, one sender on the Send API, the 24-hour standard messaging window."""
