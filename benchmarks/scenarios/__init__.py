"""What is measured: each module runs one family of scenarios against a sink given by its port."""
