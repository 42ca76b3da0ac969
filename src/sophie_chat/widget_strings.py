"""Every string the widget shows, translated on the server in the active language.

The browser receives them as JSON; ``%(name)s`` placeholders that only the browser can fill
(counts, seconds) are left in place and interpolated there.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import pgettext


def interface_strings(name: str) -> dict[str, str]:
    """Return the widget's strings, with the assistant's ``name`` already filled in."""
    n = {"name": name}
    return {
        "open": _("Open chat with %(name)s") % n,
        "minimizeChat": _("Minimize chat"),
        "dialog": _("Chat with %(name)s") % n,
        "online": pgettext("connection status", "Online"),
        "connecting": pgettext("connection status", "Connecting…"),
        "reconnecting": pgettext("connection status", "Reconnecting…"),
        "offline": pgettext("connection status", "Offline"),
        "minimize": _("Minimize"),
        "end": _("End conversation"),
        "endConfirm": _("End this conversation?"),
        "endYes": _("End"),
        "cancel": _("Cancel"),
        "messages": _("Messages"),
        "message": _("Message"),
        "placeholder": _("Type your message…"),
        "send": _("Send"),
        "stop": _("Stop answer"),
        "counter": _("%(count)s of %(max)s characters"),
        "typing": _("%(name)s is typing…") % n,
        "you": _("You"),
        "greeting": _("Hi! I'm %(name)s. How can I help you today?") % n,
        "lost": _("Connection lost. Reconnecting in %(seconds)s s…"),
        "retrying": _("Connection lost. Reconnecting…"),
        "tryNow": _("Try now"),
        "sending": _("Sending…"),
        "queued": _("Waiting for the connection to send."),
        "held": _("Will be sent shortly."),
        "notSent": _("Not sent."),
        "expired": _("Your previous conversation expired, so this is a new one."),
        "ended": _("This conversation has ended."),
        "loginRequired": _("Please log in to chat with %(name)s.") % n,
        "loadingOlder": _("Loading earlier messages…"),
        "stopped": _("Answer stopped."),
        "interrupted": _("This answer was interrupted."),
        "announce": _("%(name)s says:") % n,
        "unreadOne": _("1 unread message"),
        "unread": _("%(count)s unread messages"),
        "newTab": _("opens in a new tab"),
        "rateTitle": _("How was your conversation?"),
        "rateStar": _("%(count)s of 5 stars"),
        "rateComment": _("Comment (optional)"),
        "rateSubmit": _("Send rating"),
        "rateSkip": _("Skip"),
        "rateThanks": _("Thank you for your feedback!"),
        "newConversation": _("Start a new conversation"),
        "escalationTitle": _("Talk to our support team"),
        "email": _("E-mail"),
        "phone": _("Phone"),
        "whatsapp": _("WhatsApp"),
        "hours": _("Hours"),
        "helpCenter": _("Help center"),
        # Friendly text per error code, used when the server's own message is missing.
        "err_rate_limited": _("You are sending messages too quickly. Try again in %(seconds)s s."),
        "err_too_long": _("Your message is too long. Please shorten it."),
        "err_invalid": _("That message could not be sent."),
        "err_unavailable": _("We could not save your message. Trying again shortly…"),
        "err_ai_unavailable": _("The assistant is unavailable right now. Please try again later."),
        "err_busy": _("Please wait for the current answer to finish."),
        "err_forbidden": _("You cannot access this conversation."),
        "err_generic": _("Something went wrong. Please try again."),
    }
