-- Routes whose wasm plugin is not uploaded yet record outcome 'waiting'; they run when it arrives.
CREATE INDEX route_results_waiting ON route_results (route) WHERE outcome = 'waiting';
