from __future__ import annotations

from django.contrib import admin

from marketplace.models import Booking, Category, Profile, Service


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "icon"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "kind", "city"]
    list_filter = ["kind", "city"]
    search_fields = ["user__username", "user__first_name", "city"]


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ["title", "category", "provider", "price", "price_unit", "city", "available"]
    list_filter = ["category", "city", "available", "featured"]
    search_fields = ["title", "description"]
    prepopulated_fields = {"slug": ["title"]}


@admin.register(Booking)
class BookingAdmin(admin.ModelAdmin):
    list_display = ["service", "client", "date", "status"]
    list_filter = ["status"]
    date_hierarchy = "date"
