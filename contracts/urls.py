from django.urls import path

from contracts import notifications_views, views

app_name = "contracts"


def _catalogue(entity: views.CatalogueEntity):
    """list, new, detail and edit pages of one catalogue entity."""
    prefix, name, kwargs = f"catalogue/{entity.slug}/", entity.name, {"entity": entity}
    return [
        path(prefix, views.catalogue_list, kwargs, name=f"{name}_list"),
        path(f"{prefix}new/", views.catalogue_create, kwargs, name=f"{name}_create"),
        path(f"{prefix}<int:pk>/", views.catalogue_detail, kwargs, name=f"{name}_detail"),
        path(f"{prefix}<int:pk>/edit/", views.catalogue_edit, kwargs, name=f"{name}_edit"),
    ]


urlpatterns = [
    # Contracts and their terms
    path("contracts/", views.contract_list, name="list"),
    path("contracts/csv/", views.contract_list_csv, name="list_csv"),
    path("contracts/new/", views.contract_create, name="create"),
    path("contracts/<int:pk>/", views.contract_detail, name="detail"),
    path("contracts/<int:pk>/edit/", views.contract_edit, name="edit"),
    path("contracts/<int:pk>/rate-lines/new/", views.rate_line_add, name="rate_line_add"),
    path("contracts/<int:pk>/service-lines/new/", views.service_line_add, name="service_line_add"),
    path("contracts/<int:pk>/service-lines/<int:line_pk>/end/", views.service_line_end, name="service_line_end"),
    path("contracts/<int:pk>/device-classes/new/", views.device_class_add, name="device_class_add"),
    path("contracts/<int:pk>/device-counts/new/", views.device_count_record, name="device_count_record"),
    path("contracts/<int:pk>/usage/new/", views.usage_record, name="usage_record"),
    path("contracts/<int:pk>/blocks/new/", views.block_purchase_add, name="block_purchase_add"),
    path("contracts/<int:pk>/milestones/new/", views.milestone_add, name="milestone_add"),
    path("contracts/<int:pk>/milestones/<int:milestone_pk>/complete/", views.milestone_complete,
         name="milestone_complete"),
    # Customers
    path("customers/", views.customer_list, name="customer_list"),
    path("customers/csv/", views.customer_list_csv, name="customer_list_csv"),
    path("customers/new/", views.customer_create, name="customer_create"),
    path("customers/<int:pk>/", views.customer_detail, name="customer_detail"),
    path("customers/<int:pk>/edit/", views.customer_edit, name="customer_edit"),
    # Catalogue
    path("catalogue/", views.catalogue, name="catalogue"),
    path("notifications/", notifications_views.notification_list, name="notifications"),
    # Work types, roles, rate items, products, exclusion sets
    *(route for entity in views.CATALOGUE for route in _catalogue(entity)),
    # Tax rates are versioned: a change is a new version, never an edit.
    path("catalogue/tax-rates/", views.tax_rate_list, name="tax_rate_list"),
    path("catalogue/tax-rates/new/", views.tax_rate_create, name="tax_rate_create"),
    path("catalogue/tax-rates/<int:pk>/", views.tax_rate_detail, name="tax_rate_detail"),
    path("catalogue/tax-rates/<int:pk>/new-version/", views.tax_rate_new_version, name="tax_rate_new_version"),
]
