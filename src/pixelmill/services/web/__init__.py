"""The browser workspace: the built Vue app (``static/``, from ``web/`` by ``npm run
build``) served by the gateway at ``/`` (see :mod:`pixelmill.services.web.ui`)."""
