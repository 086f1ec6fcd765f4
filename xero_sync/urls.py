from django.urls import path

from . import books_views, views, webhooks

app_name = "xero_sync"

# The callback path is fixed: operators register it with Xero as the app's redirect URI.
urlpatterns = [
    path("settings/", views.settings_page, name="settings"),
    path("connect/", views.connect, name="connect"),
    path("callback/", views.callback, name="callback"),
    path("choose/<int:attempt_id>/", views.choose_tenant, name="choose_tenant"),
    path("disconnect/", views.disconnect_view, name="disconnect"),
    path("chart/refresh/", views.chart_refresh, name="chart_refresh"),
    path("sync-now/", views.sync_now_view, name="sync_now"),
    path("books/", books_views.books_check_page, name="books_check"),
    path("books/again/", books_views.books_check_again, name="books_check_again"),
    path("books/fresh/", books_views.books_check_fresh, name="books_check_fresh"),
    path("webhooks/", webhooks.xero_webhook, name="webhooks"),
]
