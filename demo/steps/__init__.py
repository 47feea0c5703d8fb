"""One module per area; each exposes one step ``seed_<thing>(*, stdout, rng)``.

The steps run in the order ``demo.management.commands.seed_demo.DEMO_STEPS`` lists them
(people first; usage before costs, see docs/ARCHITECTURE.md), each with its own
``random.Random(SEED)``, and write through the product's services.
"""
