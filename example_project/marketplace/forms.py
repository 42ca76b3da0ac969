from __future__ import annotations

import datetime

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from marketplace.models import Booking


class BookingForm(forms.ModelForm):
    class Meta:
        model = Booking
        fields = ["date", "notes"]
        widgets = {
            "date": forms.DateInput(attrs={"type": "date"}),
            "notes": forms.Textarea(attrs={"rows": 3}),
        }
        labels = {"date": _("When?"), "notes": _("Anything the provider should know?")}

    def clean_date(self) -> datetime.date:
        date: datetime.date = self.cleaned_data["date"]
        if date < timezone.localdate():
            raise forms.ValidationError(_("Pick today or a later date."))
        return date
