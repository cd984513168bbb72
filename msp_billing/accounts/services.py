"""Users of one MSP: create, change role, deactivate."""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from msp_billing.accounts.models import User
from msp_billing.accounts.roles import Role


def user_create(*, email: str, role: str, password: str | None = None, full_name: str = "") -> User:
    """A new user of the current tenant. Without a password the user sets one by invitation."""
    email = (email or "").strip().lower()
    validate_email(email)
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role “{role}”."})
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationError({"email": f"{email} already has an account here."})
    user = User(email=email, role=role, full_name=full_name.strip())
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.save()
    return user


@transaction.atomic
def user_update(*, user_id: int, role: str, is_active: bool, acting_user: User) -> User:
    """Change a user's role or access; an MSP always keeps at least one active owner."""
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role “{role}”."})
    user = User.objects.select_for_update().get(pk=user_id)
    losing_owner = user.role == Role.OWNER and user.is_active and (role != Role.OWNER or not is_active)
    if losing_owner and not User.objects.filter(role=Role.OWNER, is_active=True).exclude(pk=user.pk).exists():
        raise ValidationError("Keep at least one active owner: make someone else owner first.")
    if user.pk == acting_user.pk and not is_active:
        raise ValidationError("You cannot deactivate your own account.")
    user.role = role
    user.is_active = is_active
    user.save(update_fields=["role", "is_active"])
    return user


def user_ensure(*, email: str, role: str, full_name: str, password: str) -> User:
    """The user ``email`` with this role, name and password, active: created when missing (the demo MSP's users)."""
    user, _ = User.objects.get_or_create(email=email, defaults={"full_name": full_name, "role": role})
    user.full_name, user.role, user.is_active = full_name, role, True
    if not user.check_password(password):
        # Only when it differs: a new hash would sign out everyone signed in as the user.
        user.set_password(password)
    user.save()
    return user


def user_password_set(*, user: User, password: str) -> None:
    """Give ``user`` a password (a demo technician the import created without one)."""
    user.set_password(password)
    user.save(update_fields=["password"])
