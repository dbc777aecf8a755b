"""Products, their environments, their members and their audit log."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from designer import governance, selectors, services
from designer.api.base import ApiView
from designer.api.pagination import StrictPagination
from designer.api.serializers import (
    AuditOut,
    AuditPage,
    EnvironmentIn,
    EnvironmentOut,
    EnvironmentUpdate,
    MemberIn,
    MemberOut,
    MemberUpdate,
    ProductIn,
    ProductOut,
    ProductUpdate,
)
from designer.models import Role

# --- products -----------------------------------------------------------------------------


class ProductListApi(ApiView):
    @extend_schema(operation_id="products_list", responses=ProductOut(many=True))
    def get(self, request: Request) -> Response:
        products = selectors.product_list(user=request.user)
        return Response(ProductOut(products, many=True).data)

    @extend_schema(
        operation_id="products_create",
        request=ProductIn,
        responses={201: ProductOut},
        description="Staff only; the creator becomes the product's first admin.",
    )
    def post(self, request: Request) -> Response:
        if not (request.user.is_staff or request.user.is_superuser):
            raise PermissionDenied("Only staff can create products.")
        data = self.body(ProductIn)
        product = services.product_create(creator=request.user, **data)
        return Response(ProductOut(product).data, status=status.HTTP_201_CREATED)


class ProductDetailApi(ApiView):
    @extend_schema(operation_id="products_get", responses=ProductOut)
    def get(self, request: Request, slug: str) -> Response:
        return Response(ProductOut(self.product(Role.VIEWER)).data)

    @extend_schema(operation_id="products_update", request=ProductUpdate, responses=ProductOut)
    def patch(self, request: Request, slug: str) -> Response:
        product = self.product(Role.ADMIN)
        data = self.body(ProductUpdate)
        product = services.product_update(product=product, actor=request.user, **data)
        return Response(ProductOut(product).data)

    @extend_schema(
        operation_id="products_delete",
        responses={204: None},
        description="Superusers only; refused while runs exist.",
    )
    def delete(self, request: Request, slug: str) -> Response:
        product = self.product(Role.ADMIN)
        if not request.user.is_superuser:
            raise PermissionDenied("Only a superuser can delete a product.")
        services.product_delete(product=product, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- environments -------------------------------------------------------------------------


class EnvironmentListApi(ApiView):
    @extend_schema(operation_id="environments_list", responses=EnvironmentOut(many=True))
    def get(self, request: Request, slug: str) -> Response:
        product = self.product(Role.VIEWER)
        environments = selectors.environment_list(product=product)
        return Response(EnvironmentOut(environments, many=True).data)

    @extend_schema(
        operation_id="environments_create",
        request=EnvironmentIn,
        responses={201: EnvironmentOut},
    )
    def post(self, request: Request, slug: str) -> Response:
        product = self.product(Role.ADMIN)
        data = self.body(EnvironmentIn)
        environment = governance.environment_create(product=product, actor=request.user, **data)
        return Response(EnvironmentOut(environment).data, status=status.HTTP_201_CREATED)


class EnvironmentDetailApi(ApiView):
    @extend_schema(operation_id="environments_get", responses=EnvironmentOut)
    def get(self, request: Request, slug: str, env: str) -> Response:
        product = self.product(Role.VIEWER)
        environment = selectors.environment_get(product=product, slug=env)
        return Response(EnvironmentOut(environment).data)

    @extend_schema(
        operation_id="environments_update", request=EnvironmentUpdate, responses=EnvironmentOut
    )
    def patch(self, request: Request, slug: str, env: str) -> Response:
        product = self.product(Role.ADMIN)
        environment = selectors.environment_get(product=product, slug=env)
        data = self.body(EnvironmentUpdate)
        environment = governance.environment_update(
            environment=environment, actor=request.user, **data
        )
        return Response(EnvironmentOut(environment).data)

    @extend_schema(
        operation_id="environments_delete",
        responses={204: None},
        description="Refused for a production environment and for one that has runs.",
    )
    def delete(self, request: Request, slug: str, env: str) -> Response:
        product = self.product(Role.ADMIN)
        environment = selectors.environment_get(product=product, slug=env)
        services.environment_delete(environment=environment, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- members ------------------------------------------------------------------------------


class MemberListApi(ApiView):
    @extend_schema(operation_id="members_list", responses=MemberOut(many=True))
    def get(self, request: Request, slug: str) -> Response:
        product = self.product(Role.VIEWER)
        return Response(MemberOut(selectors.member_list(product=product), many=True).data)

    @extend_schema(
        operation_id="members_set",
        request=MemberIn,
        responses={200: MemberOut, 201: MemberOut},
        description="Add a user to the product with a role, or change their role.",
    )
    def post(self, request: Request, slug: str) -> Response:
        product = self.product(Role.ADMIN)
        data = self.body(MemberIn)
        user = get_user_model().objects.filter(username=data["username"], is_active=True).first()
        if user is None:
            raise ValidationError({"username": "no active user has this username"})
        existed = product.memberships.filter(user=user).exists()
        membership = services.member_set(
            product=product, user=user, role=data["role"], actor=request.user
        )
        code = status.HTTP_200_OK if existed else status.HTTP_201_CREATED
        return Response(MemberOut(membership).data, status=code)


class MemberDetailApi(ApiView):
    @extend_schema(operation_id="members_get", responses=MemberOut)
    def get(self, request: Request, slug: str, username: str) -> Response:
        product = self.product(Role.VIEWER)
        return Response(MemberOut(selectors.member_get(product=product, username=username)).data)

    @extend_schema(operation_id="members_update", request=MemberUpdate, responses=MemberOut)
    def patch(self, request: Request, slug: str, username: str) -> Response:
        product = self.product(Role.ADMIN)
        membership = selectors.member_get(product=product, username=username)
        data = self.body(MemberUpdate)
        membership = services.member_set(
            product=product, user=membership.user, role=data["role"], actor=request.user
        )
        return Response(MemberOut(membership).data)

    @extend_schema(operation_id="members_remove", responses={204: None})
    def delete(self, request: Request, slug: str, username: str) -> Response:
        product = self.product(Role.ADMIN)
        membership = selectors.member_get(product=product, username=username)
        services.member_remove(membership=membership, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- audit --------------------------------------------------------------------------------


class AuditPagination(StrictPagination):
    default_limit = 100
    max_limit = 500


class AuditListApi(ApiView):
    @extend_schema(
        operation_id="audit_list",
        parameters=[
            OpenApiParameter("action", str, description="Action prefix, e.g. 'activation'."),
            OpenApiParameter("actor", str, description="Username."),
            OpenApiParameter("target", str, description="Part of the target."),
            OpenApiParameter("since", str, description="From this date (or ISO date-time)."),
            OpenApiParameter("until", str, description="To this date, inclusive."),
            *AuditPagination.parameters(),
        ],
        responses=AuditPage,
        description="Admins only. Newest first; secrets are masked.",
    )
    def get(self, request: Request, slug: str) -> Response:
        product = self.product(Role.ADMIN)
        entries = selectors.audit_list(
            product=product,
            action=request.query_params.get("action", "")[:100],
            actor=request.query_params.get("actor", "")[:150],
            target=request.query_params.get("target", "")[:300],
        )
        entries = governance.audit_between(entries, request.query_params)
        paginator = AuditPagination()
        page = paginator.paginate_queryset(entries, request, view=self)
        return paginator.get_paginated_response(AuditOut(page, many=True).data)
