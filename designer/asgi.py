"""ASGI entry point: HTTP through Django, WebSockets through Channels with auth + origin checks."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "designer.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from designer.ws_origin import SameOriginValidator  # noqa: E402
from designer.ws_token import TokenAuthMiddleware  # noqa: E402
from runtime.routing import websocket_urlpatterns  # noqa: E402

# Sockets read no client address and accept no password: they authenticate with the
# session cookie, and channels' get_user checks the session's password hash, so a
# password change refuses the user's old sessions here too (tests/designer/test_logins.py);
# or with an API token in an Authorization header (scripts, `trellis run`; ws_token.py).
# The one client-address rule (TRELLIS_TRUSTED_PROXIES) is designer.accounts.client_ip.
application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Origin = this site (scheme, host and port; see designer/ws_origin.py).
        "websocket": SameOriginValidator(
            AuthMiddlewareStack(TokenAuthMiddleware(URLRouter(websocket_urlpatterns)))
        ),
    }
)
