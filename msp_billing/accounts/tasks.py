from django.core.management import call_command

from msp_billing.tasks import tenant_task


@tenant_task
def send_invitation(user_id: int) -> str:
    """E-mail a new user the link to set a password on their MSP's host."""
    from msp_billing.accounts.mail import invitation_send

    return invitation_send(user_id=user_id)


@tenant_task
def clear_expired_sessions() -> None:
    call_command("clearsessions")
