"""The web console at ``/console``: what offramp is doing, spending and saving.

Served by the app itself from files in this package (plain HTML, CSS and JavaScript, with
SVG charts drawn in the browser; nothing from a CDN, no build step). The pages poll small
JSON routes under ``/console/api``; while nobody has the console open it costs nothing
but its routes. ``access`` owns sign-in and sessions, ``alerts`` the alert rules, and one
module per page owns that page's routes.
"""
