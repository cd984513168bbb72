"""The ``technicians`` section: users with a technician profile (role, cost)."""
from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from contracts.models import Role
from msp_billing.accounts.models import User
from msp_billing.accounts.roles import Role as UserRole
from msp_billing.accounts.services import user_create
from onboarding.importing.core import ImportCore, RecordFailed
from onboarding.importing.document import shown
from tickets.services import technician_role_set


class TechniciansSection(ImportCore):
    # -- technicians --

    def import_technicians(self) -> None:
        seen: dict = {}
        for path, record in self.records("technicians"):
            email = (record.get("email") or "").strip().lower() if isinstance(record.get("email"), str) else ""
            if not self.usable(path):
                self.fail("technician", email)
                continue
            if not self.unique_in_file(seen, email, (*path, "email"), f"technician {email}"):
                continue
            try:
                role = self.lookup(self.roles, "role", record["role"], (*path, "role"), "role")
                user = self.users.get(email)
                if user is None:
                    try:
                        validate_email(email)
                    except ValidationError:
                        self.problem((*path, "email"), f"{shown(record['email'])} is not an e-mail address")
                        raise RecordFailed from None
                    # Not a login yet: an admin invites them (password reset) when they should sign in.
                    user = self.attempt(path, user_create, email=email, role=UserRole.TECHNICIAN,
                                        full_name=record.get("full_name", ""), password=None)
                    self.users[email] = user
                    self.count("technicians", "created")
                profile = self.profiles.get(user.pk)
                if profile is None or profile.role_id != role.pk:
                    self.profiles[user.pk] = technician_role_set(user=user, role=role)
                    self.count("technician roles", "created" if profile is None else "updated")
                else:
                    self.count("technician roles", "unchanged")
            except RecordFailed:
                self.fail("technician", email)

    def technician(self, value: Any, path: tuple, *, needs_role: bool) -> tuple[User, Role | None]:
        email = value.strip().lower()
        user = self.users.get(email)
        listed_but_failed = ("technician", email) in self.failed
        if user is None:
            if not listed_but_failed:
                self.problem(path, f"unknown user {shown(value)}: add them under $.technicians")
            raise RecordFailed
        profile = self.profiles.get(user.pk)
        if needs_role and profile is None:
            if not listed_but_failed:
                self.problem(path, f"{email} has no role yet: give them one under $.technicians")
            raise RecordFailed
        return user, profile.role if profile else None
