"""Remote tiers: a Redis server or an HTTP (WebDAV) server shared by machines that share no
filesystem, after the local and shared directory tiers.

``urls`` parses ``SOBUILD_REMOTE``; ``signing`` keeps the team secret and its HMAC;
``entries`` is what travels (signed kernel records, artifact bundles, data entries); ``tier``
wraps one backend with the checks, the counters and the wait budget; ``redis`` and ``http``
are the backends (``backend`` says what one does), one file each, whose client library is
imported only when a tier of that kind is configured.
"""
