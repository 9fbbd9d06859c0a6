"""Mail: MAINTAINERS, composing a series as mail, SMTP and archives."""
