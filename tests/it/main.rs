//! End-to-end tests: the real gateway on an ephemeral port, real HTTP receivers, the real binary
//! where a process must die.

mod e2e_admin;
mod e2e_admin_targets;
mod e2e_backpressure;
mod e2e_browser;
mod e2e_catalog;
mod e2e_catalog_cli;
mod e2e_cli;
mod e2e_cluster;
mod e2e_console;
mod e2e_crash;
mod e2e_delivery;
mod e2e_examples;
mod e2e_hostile;
mod e2e_hostile_config;
mod e2e_hostile_small;
mod e2e_ingress;
mod e2e_interop;
mod e2e_openapi;
mod e2e_operations;
mod e2e_plugin_cache;
mod e2e_plugin_cli;
mod e2e_plugin_diff;
mod e2e_plugin_pagerduty;
mod e2e_plugin_teams;
mod e2e_plugins;
mod e2e_port_api;
mod e2e_presets;
mod e2e_route_containment;
mod e2e_routes;
mod e2e_slow_disk;
mod e2e_try;
mod jq_reference;
mod port_docs;
mod slack_limits;
mod utils;
