"""The web layer: the only code that imports Flask.

``operations`` declares each endpoint once (routing, request loading, response dumping and the
OpenAPI document come from that one declaration); ``identity`` says who is calling and from which
device; ``errors`` maps every error to the one envelope; ``request_log`` writes the request line
and the request metrics; ``views/`` holds the endpoints, each a thin call into ``bff.flows``.
"""
