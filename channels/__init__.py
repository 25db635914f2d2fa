"""Platform adapters, one module per platform on its official SDK, and what they share.

Each platform ``<p>`` (``telegram``, ``slack``, ``discord``) is three modules:

* ``<p>.py`` — the adapter (a ``Channel``): its config section, lifecycle and ingress;
* ``_<p>_parse.py`` — the platform's updates and events → ``Inbound``s, without I/O;
* ``_<p>_api.py`` — sending through the SDK (``PlatformOps``) and the SDK's errors →
  ``ChannelError``.

Slack has one more, ``_slack_ingress.py``: its signed HTTP endpoint, checked before Bolt.
``terminal.py`` is the local chat. Shared by every adapter: ``delivery`` (the ``Deliverer``),
``formatting``, ``splitting``, ``ratelimit`` and ``access``; ``base`` re-exports the contract
(``hub.channel``). Adapters are loaded through the ``autohands.channels`` entry points only
when config enables them, so this package imports none of them.
"""
