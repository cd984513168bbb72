from django.apps import AppConfig


class TicketsConfig(AppConfig):
    name = "tickets"

    def ready(self) -> None:
        from contracts.hooks import register_routing_listener
        from tickets.services import entries_reroute

        register_routing_listener(entries_reroute)
