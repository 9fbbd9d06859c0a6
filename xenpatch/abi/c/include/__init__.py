"""Package data: xenpatch's own tiny libc headers, used with ``cpp -nostdinc``."""
