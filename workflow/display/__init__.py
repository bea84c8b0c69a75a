"""How times look to people: the display zone, local times, periods cut in that zone.

Inside, every instant is aware UTC and JSON says so with an offset; a person reads and
types times in one display zone chosen by :func:`zones.choose_zone`.
"""
