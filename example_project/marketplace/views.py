"""Pages of the example marketplace. Plain class-based views; nothing here knows about the chat."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.auth.views import redirect_to_login
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django.views.generic import DetailView, ListView, TemplateView

from marketplace.forms import BookingForm
from marketplace.models import Booking, Category, Profile, Service


def _profile(request: HttpRequest) -> Profile | None:
    if not request.user.is_authenticated:
        return None
    return Profile.objects.filter(user=request.user).first()


class HomeView(TemplateView):
    template_name = "marketplace/home.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["categories"] = Category.objects.annotate(n=Count("services"))
        context["featured"] = Service.objects.filter(featured=True, available=True).select_related(
            "category", "provider__user"
        )[:6]
        return context


class CategoryListView(ListView):
    template_name = "marketplace/category_list.html"
    context_object_name = "categories"

    def get_queryset(self) -> QuerySet[Category]:
        return Category.objects.annotate(n=Count("services"))


class CategoryDetailView(DetailView):
    model = Category
    template_name = "marketplace/category_detail.html"
    context_object_name = "category"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["services"] = self.object.services.select_related("provider__user")
        return context


class ServiceListView(ListView):
    template_name = "marketplace/service_list.html"
    context_object_name = "services"
    paginate_by = 12

    def get_queryset(self) -> QuerySet[Service]:
        services = Service.objects.select_related("category", "provider__user")
        params = self.request.GET
        if category := params.get("categoria"):
            services = services.filter(category__slug=category)
        if city := params.get("cidade"):
            services = services.filter(city__iexact=city)
        if query := params.get("q", "").strip():
            services = services.filter(
                Q(title__icontains=query)
                | Q(tags__icontains=query)
                | Q(description__icontains=query)
                | Q(category__name__icontains=query)
            )
        return services

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        params = self.request.GET
        context["categories"] = Category.objects.all()
        context["cities"] = (
            Service.objects.order_by("city").values_list("city", flat=True).distinct()
        )
        context["selected"] = {
            "categoria": params.get("categoria", ""),
            "cidade": params.get("cidade", ""),
            "q": params.get("q", ""),
        }
        context["filtered"] = any(context["selected"].values())
        return context


class ServiceDetailView(DetailView):
    model = Service
    template_name = "marketplace/service_detail.html"
    context_object_name = "service"

    def get_queryset(self) -> QuerySet[Service]:
        return Service.objects.select_related("category", "provider__user")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["form"] = kwargs.get("form") or BookingForm()
        context["related"] = (
            Service.objects.filter(category=self.object.category)
            .exclude(pk=self.object.pk)
            .select_related("provider__user")[:3]
        )
        return context


@require_POST
def book_service(request: HttpRequest, slug: str) -> HttpResponse:
    service = get_object_or_404(Service.objects.select_related("category"), slug=slug)
    if not request.user.is_authenticated:
        # Back to the service page after logging in: this URL only takes POST.
        return redirect_to_login(service.get_absolute_url())
    if not service.available:
        messages.error(request, _("This provider is not taking new bookings right now."))
        return redirect(service)
    form = BookingForm(request.POST)
    if not form.is_valid():
        view = ServiceDetailView(request=request, kwargs={"slug": slug}, object=service)
        return render(request, view.template_name, view.get_context_data(form=form), status=400)
    booking = form.save(commit=False)
    booking.client = request.user
    booking.service = service
    booking.save()
    messages.success(
        request,
        _("Booking requested! %(provider)s will confirm it soon.")
        % {"provider": service.provider.display_name},
    )
    return redirect("marketplace:my_bookings")


@require_POST
def cancel_booking(request: HttpRequest, pk: int) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect_to_login(reverse("marketplace:my_bookings"))
    # Only the client's own bookings: anyone else's id is simply not found.
    booking = get_object_or_404(
        Booking.objects.select_related("service"), pk=pk, client=request.user
    )
    if booking.status not in (Booking.Status.REQUESTED, Booking.Status.CONFIRMED):
        messages.error(request, _("This booking can no longer be cancelled."))
        return redirect("marketplace:my_bookings")
    booking.status = Booking.Status.CANCELLED
    booking.save(update_fields=["status"])
    if booking.date > timezone.localdate():
        messages.success(request, _("Booking cancelled at no cost. The refund is on its way."))
    else:
        messages.success(
            request,
            _("Booking cancelled. As it was less than 24 h before, a %(fee)s%% fee applies.")
            % {"fee": 20},
        )
    return redirect("marketplace:my_bookings")


class BecomeProviderView(TemplateView):
    template_name = "marketplace/become_provider.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["categories"] = Category.objects.all()
        return context


class HowItWorksView(TemplateView):
    template_name = "marketplace/how_it_works.html"


class MyBookingsView(LoginRequiredMixin, ListView):
    template_name = "marketplace/my_bookings.html"
    context_object_name = "bookings"

    def get_queryset(self) -> QuerySet[Booking]:
        return Booking.objects.filter(client=self.request.user).select_related(
            "service__provider__user", "service__category"
        )


class ProviderDashboardView(LoginRequiredMixin, TemplateView):
    template_name = "marketplace/provider_dashboard.html"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.user.is_authenticated:
            profile = _profile(request)
            if profile is None or not profile.is_provider:
                messages.info(request, _("The dashboard is for service providers. Join us!"))
                return redirect("marketplace:become_provider")
            self.profile = profile
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        services = self.profile.services.select_related("category").annotate(
            n_bookings=Count("bookings")
        )
        context["profile"] = self.profile
        context["services"] = services
        context["requests"] = (
            Booking.objects.filter(service__provider=self.profile)
            .exclude(status__in=[Booking.Status.DONE, Booking.Status.CANCELLED])
            .select_related("service", "client")
        )
        return context


def not_found(request: HttpRequest) -> HttpResponse:
    """The last URL pattern: no page lives here."""
    raise Http404(request.path)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Our 404 page, with the site's header, search and the chat, so Sophie can help."""
    return render(request, "404.html", {"path": request.path}, status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    # Deliberately minimal: the database or a template may be what failed.
    return render(request, "500.html", status=500)
