from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from designer.accounts import login_rate_limited

urlpatterns = [
    # The admin's login form, under the same per-address rate as /login/ (before the
    # admin's own route, which it shadows; reverse("admin:login") is the same URL).
    path("admin/login/", login_rate_limited(admin.site.login)),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its init script as a file (?script): the CSP allows no inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("designer.api.urls")),
    path("api/v1/", include("runtime.urls")),  # runs (owner: engine engineer)
    path("demo/", include("designer.demo")),
    path(
        "", include("runtime.ops_urls")
    ),  # /metrics, /healthz, /readyz  # the demo workflow's stand-in service
    # Pages (login, products, workflows, canvas, run monitor): owner canvas engineer.
    path("", include("designer.pages")),
]

# JSON error bodies under /api/ for URLs no route matches (designer/api/errors.py).
handler404 = "designer.api.errors.page_not_found"
handler500 = "designer.api.errors.server_error"
