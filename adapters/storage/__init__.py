"""Files a node keeps: the certified round log and encrypted key stores."""
