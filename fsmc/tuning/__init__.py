"""``fsmc tune``'s pure parts: the candidates a target calls for, and which of the measured ones to ship."""
