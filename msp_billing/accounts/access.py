"""Capability checks for views.

Every tenant view is wrapped by ``requires(capability)`` (or marked ``open_to_all``), and
the wrapper records the capability on the view so a test can walk every URL and prove
that, for example, no billing URL answers a technician with anything but 403.
"""
from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

from msp_billing.accounts.roles import READ_ONLY, Capability

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def requires(capability: Capability, *, write: Capability | None = None):
    """Signed-in users with ``capability``; unsafe methods need ``write`` too when given.

    A capability that only lets one look (``READ_ONLY``) never lets one post: without an
    explicit ``write`` its pages refuse unsafe methods to anyone who may not change what
    they show, so a POST to a read-only report is 403 rather than a page that ignored it.
    """
    write = write or READ_ONLY.get(capability)

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            user = request.user
            if not user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not user.can(capability):
                raise PermissionDenied("Your role does not give access to this page.")
            if write and request.method not in SAFE_METHODS and not user.can(write):
                raise PermissionDenied("Your role may look at this page but not change it.")
            return view(request, *args, **kwargs)

        wrapped.required_capability = capability
        wrapped.write_capability = write
        return wrapped

    return decorator


def open_to_all(view):
    """Pages anyone may open (sign-in, password reset, health)."""
    view.required_capability = None
    return view
