import reflex as rx

from escalation_app.settings import get_settings

config = rx.Config(
    app_name="escalation_app",
    telemetry_enabled=False,
    frontend_port=3000,
    backend_port=8000,
    plugins=[
        rx.plugins.RadixThemesPlugin(
            theme=rx.theme(appearance="light", accent_color="indigo", gray_color="slate", radius="medium")
        ),
    ],
    disable_plugins=[rx.plugins.SitemapPlugin],
    show_built_with_reflex=False,
    # Only the product's own origin(s) may call the backend or open its websocket
    # (Reflex's default "*" reflects any Origin with credentials).
    cors_allowed_origins=get_settings().cors_origins,
)
