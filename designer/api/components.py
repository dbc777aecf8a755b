"""A product's components (apps, databases, notifiers…) and the events they declare."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from designer import selectors, services
from designer.api.base import ApiView
from designer.api.serializers import ComponentIn, ComponentOut, ComponentUpdate
from designer.models import Role


class ComponentListApi(ApiView):
    @extend_schema(operation_id="components_list", responses=ComponentOut(many=True))
    def get(self, request: Request, slug: str) -> Response:
        product = self.product(Role.VIEWER)
        return Response(ComponentOut(selectors.component_list(product=product), many=True).data)

    @extend_schema(
        operation_id="components_create", request=ComponentIn, responses={201: ComponentOut}
    )
    def post(self, request: Request, slug: str) -> Response:
        product = self.product(Role.DESIGNER)
        data = self.body(ComponentIn)
        component = services.component_create(product=product, actor=request.user, **data)
        return Response(ComponentOut(component).data, status=status.HTTP_201_CREATED)


class ComponentDetailApi(ApiView):
    @extend_schema(operation_id="components_get", responses=ComponentOut)
    def get(self, request: Request, slug: str, tag: str) -> Response:
        product = self.product(Role.VIEWER)
        return Response(ComponentOut(selectors.component_get(product=product, tag=tag)).data)

    @extend_schema(
        operation_id="components_update", request=ComponentUpdate, responses=ComponentOut
    )
    def patch(self, request: Request, slug: str, tag: str) -> Response:
        product = self.product(Role.DESIGNER)
        component = selectors.component_get(product=product, tag=tag)
        data = self.body(ComponentUpdate)
        component = services.component_update(component=component, actor=request.user, **data)
        return Response(ComponentOut(component).data)

    @extend_schema(operation_id="components_delete", responses={204: None})
    def delete(self, request: Request, slug: str, tag: str) -> Response:
        product = self.product(Role.DESIGNER)
        component = selectors.component_get(product=product, tag=tag)
        services.component_delete(component=component, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
