"""The admin password functions under their earlier import path; they live in
``promptlab.store.admin`` (the data layer owns the ``users`` table)."""

from promptlab.store.admin import (  # noqa: F401
    ORIGINAL_DEFAULT_PASSWORD,
    PASSWORD_ENV,
    admin_has_default_password,
    admin_has_password,
    default_password_warning,
    generate_admin_password,
    password_from_environment,
    set_admin_password,
)
