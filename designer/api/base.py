"""What every authoring endpoint shares: a strict JSON body parser, JSON responses, and a
product lookup that checks the caller's role before anything else happens."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from designer.api.parsers import JSONBodyParser
from designer.models import Product, Role
from designer.selectors import product_for


class ApiView(APIView):
    parser_classes = [JSONBodyParser]
    renderer_classes = [JSONRenderer]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        # PostgreSQL refuses NUL in text: a lookup with one would be a 500, not a 404.
        for name, value in [*kwargs.items(), *request.query_params.items()]:
            if "\x00" in str(value):
                raise exceptions.ValidationError({name: ["Must not contain NUL characters."]})

    def product(self, role: Role) -> Product:
        """The URL's product, if the caller holds ``role`` in it (else 404/403)."""
        return product_for(user=self.request.user, slug=self.kwargs["slug"], role=role)

    def body(self, serializer: type[serializers.Serializer[Any]]) -> dict[str, Any]:
        """The validated request body (a 400 naming each bad field otherwise)."""
        instance = serializer(data=self.request.data)
        instance.is_valid(raise_exception=True)
        return dict(instance.validated_data)
