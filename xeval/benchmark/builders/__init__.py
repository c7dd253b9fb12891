"""One module per benchmark builder; each registers itself with ``@register``."""
