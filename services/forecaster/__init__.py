"""Offline forecasts and inventory policy (issue 5). Nothing here runs on a request path.

Not built yet: the walking skeleton stops at gold.dim_item.
"""
