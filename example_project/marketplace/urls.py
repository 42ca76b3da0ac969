from __future__ import annotations

from django.urls import path

from marketplace import views

app_name = "marketplace"

# Paths are in Portuguese, as on the real site; the knowledge base's navigation guides match them.
urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("categorias/", views.CategoryListView.as_view(), name="category_list"),
    path("categorias/<slug:slug>/", views.CategoryDetailView.as_view(), name="category_detail"),
    path("servicos/", views.ServiceListView.as_view(), name="service_list"),
    path("servicos/<slug:slug>/", views.ServiceDetailView.as_view(), name="service_detail"),
    path("servicos/<slug:slug>/contratar/", views.book_service, name="book"),
    path("seja-prestador/", views.BecomeProviderView.as_view(), name="become_provider"),
    path("como-funciona/", views.HowItWorksView.as_view(), name="how_it_works"),
    path("minhas-contratacoes/", views.MyBookingsView.as_view(), name="my_bookings"),
    path("minhas-contratacoes/<int:pk>/cancelar/", views.cancel_booking, name="cancel_booking"),
    path("painel/", views.ProviderDashboardView.as_view(), name="provider_dashboard"),
]
