"""Beyond one machine: hosts to deploy to (simulated ones: :mod:`lab.hosts.sim`), their inventory
(:mod:`lab.hosts.inventory`) and the Ansible deployment of a profile to them (:mod:`lab.hosts.deploy`)."""
