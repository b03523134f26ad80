"""controller_fw_sim package."""
