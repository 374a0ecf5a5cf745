"""Definition time: blueprints, ``.when()`` conditions, injection plans, actions and the graph."""
