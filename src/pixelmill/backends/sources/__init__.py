"""Remote image sources: URLs of ``http(s)://`` servers and ``s3://`` buckets that
pixelmill renders without storing them (``GET /v1/sources/render``).

:mod:`.guard` decides what may be fetched (allow-lists, public addresses only) and
:mod:`.fetch` fetches within the limits, connected only to the addresses checked.
"""
