from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.staticfiles.views import serve as serve_static
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from marketplace.views import not_found

urlpatterns = [
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("chat/", include("sophie_chat.urls")),
    path("entrar/", auth_views.LoginView.as_view(), name="login"),
    path("sair/", auth_views.LogoutView.as_view(), name="logout"),
    # Password reset: the e-mail goes to the console in the demo (EMAIL_BACKEND).
    path("senha/", auth_views.PasswordResetView.as_view(), name="password_reset"),
    path("senha/enviada/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "senha/nova/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "senha/pronto/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("", include("marketplace.urls")),
    # The demo runs under uvicorn, which serves no static files, and it must work with DEBUG off
    # too. A real site puts a CDN or WhiteNoise in front instead.
    re_path(r"^static/(?P<path>.*)$", serve_static, {"insecure": True}),
    # Browsers ask for /favicon.ico whatever the page says.
    path("favicon.ico", RedirectView.as_view(url="/static/marketplace/favicon.svg")),
    # Last: any other path ending in "/" is a 404 from a view (see NotFoundPageMiddleware), so the
    # site's own 404 page shows even with DEBUG on. Paths without the slash still get
    # APPEND_SLASH's redirect first.
    re_path(r"^.*/$", not_found),
]

handler404 = "marketplace.views.page_not_found"
handler500 = "marketplace.views.server_error"
