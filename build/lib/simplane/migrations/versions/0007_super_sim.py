"""super sim: fleets, network access profiles, SIMs, commands, usage rollups, settings
updates and eSIM profiles

Revision ID: 0007
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import simplane.core.db

revision = "0007"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('supersim_esim_profiles',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('sid', sa.String(length=34), nullable=False),
    sa.Column('account_sid', sa.String(length=34), nullable=False),
    sa.Column('sim_sid', sa.String(length=34), nullable=True),
    sa.Column('iccid', sa.String(length=22), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('eid', sa.String(length=32), nullable=True),
    sa.Column('generate_matching_id', sa.Boolean(), nullable=False),
    sa.Column('smdp_plus_address', sa.String(length=255), nullable=True),
    sa.Column('matching_id', sa.String(length=64), nullable=True),
    sa.Column('activation_code', sa.String(length=255), nullable=True),
    sa.Column('error_code', sa.String(length=16), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('callback_url', sa.Text(), nullable=True),
    sa.Column('callback_method', sa.String(length=8), nullable=False),
    sa.Column('date_created', simplane.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('date_updated', simplane.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_supersim_esim_profiles')),
    sa.UniqueConstraint('matching_id', name=op.f('uq_supersim_esim_profiles_matching_id')),
    sa.UniqueConstraint('sid', name=op.f('uq_supersim_esim_profiles_sid'))
    )
    op.create_index('ix_supersim_esim_profiles_account', 'supersim_esim_profiles', ['account_sid', 'pk'], unique=False)
    op.create_index('ix_supersim_esim_profiles_status', 'supersim_esim_profiles', ['status'], unique=False)
    op.create_table('supersim_ip_commands',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('sid', sa.String(length=34), nullable=False),
    sa.Column('account_sid', sa.String(length=34), nullable=False),
    sa.Column('sim_sid', sa.String(length=34), nullable=False),
    sa.Column('sim_iccid', sa.String(length=22), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('direction', sa.String(length=8), nullable=False),
    sa.Column('device_ip', sa.String(length=45), nullable=True),
    sa.Column('device_port', sa.Integer(), nullable=False),
    sa.Column('payload_type', sa.String(length=8), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('callback_url', sa.Text(), nullable=True),
    sa.Column('callback_method', sa.String(length=8), nullable=False),
    sa.Column('date_created', simplane.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('date_updated', simplane.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_supersim_ip_commands')),
    sa.UniqueConstraint('sid', name=op.f('uq_supersim_ip_commands_sid'))
    )
    op.create_index('ix_supersim_ip_commands_account', 'supersim_ip_commands', ['account_sid', 'pk'], unique=False)
    op.create_index('ix_supersim_ip_commands_account_sim', 'supersim_ip_commands', ['account_sid', 'sim_sid', 'pk'], unique=False)
    op.create_index('ix_supersim_ip_commands_status', 'supersim_ip_commands', ['status', 'direction'], unique=False)
    op.create_table('supersim_network_access_profiles',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('sid', sa.String(length=34), nullable=False),
    sa.Column('account_sid', sa.String(length=34), nullable=False),
    sa.Column('unique_name', sa.String(length=255), nullable=True),
    sa.Column('date_created', simplane.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('date_updated', simplane.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_supersim_network_access_profiles')),
    sa.UniqueConstraint('account_sid', 'unique_name', name=op.f('uq_supersim_network_access_profiles_account_sid_unique_name')),
    sa.UniqueConstraint('sid', name=op.f('uq_supersim_network_access_profiles_sid'))
    )
    op.create_index('ix_supersim_network_access_profiles_account', 'supersim_network_access_profiles', ['account_sid', 'pk'], unique=False)
    op.create_table('supersim_settings_updates',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('sid', sa.String(length=34), nullable=False),
    sa.Column('account_sid', sa.String(length=34), nullable=False),
    sa.Column('sim_sid', sa.String(length=34), nullable=False),
    sa.Column('iccid', sa.String(length=22), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('packages', sa.JSON(), nullable=False),
    sa.Column('date_completed', simplane.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('date_created', simplane.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('date_updated', simplane.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_supersim_settings_updates')),
    sa.UniqueConstraint('sid', name=op.f('uq_supersim_settings_updates_sid'))
    )
    op.create_index('ix_supersim_settings_updates_account', 'supersim_settings_updates', ['account_sid', 'pk'], unique=False)
    op.create_index(op.f('ix_supersim_settings_updates_sim_sid'), 'supersim_settings_updates', ['sim_sid'], unique=False)
    op.create_index('ix_supersim_settings_updates_status', 'supersim_settings_updates', ['status'], unique=False)
    op.create_table('supersim_sms_commands',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('sid', sa.String(length=34), nullable=False),
    sa.Column('account_sid', sa.String(length=34), nullable=False),
    sa.Column('sim_sid', sa.String(length=34), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('direction', sa.String(length=8), nullable=False),
    sa.Column('callback_url', sa.Text(), nullable=True),
    sa.Column('callback_method', sa.String(length=8), nullable=False),
    sa.Column('date_created', simplane.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('date_updated', simplane.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_supersim_sms_commands')),
    sa.UniqueConstraint('sid', name=op.f('uq_supersim_sms_commands_sid'))
    )
    op.create_index('ix_supersim_sms_commands_account', 'supersim_sms_commands', ['account_sid', 'pk'], unique=False)
    op.create_index('ix_supersim_sms_commands_account_sim', 'supersim_sms_commands', ['account_sid', 'sim_sid', 'pk'], unique=False)
    op.create_index('ix_supersim_sms_commands_status', 'supersim_sms_commands', ['status', 'direction'], unique=False)
    op.create_table('supersim_usage_hours',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_sid', sa.String(length=34), nullable=False),
    sa.Column('sim_sid', sa.String(length=34), nullable=False),
    sa.Column('fleet_sid', sa.String(length=34), nullable=True),
    sa.Column('network_sid', sa.String(length=34), nullable=False),
    sa.Column('iso_country', sa.String(length=2), nullable=True),
    sa.Column('hour', simplane.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('data_upload', sa.BigInteger(), nullable=False),
    sa.Column('data_download', sa.BigInteger(), nullable=False),
    sa.Column('data_total', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_supersim_usage_hours')),
    sa.UniqueConstraint('sim_sid', 'hour', 'network_sid', name=op.f('uq_supersim_usage_hours_sim_sid_hour_network_sid'))
    )
    op.create_index('ix_supersim_usage_hours_account_hour', 'supersim_usage_hours', ['account_sid', 'hour'], unique=False)
    op.create_table('supersim_fleets',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('sid', sa.String(length=34), nullable=False),
    sa.Column('account_sid', sa.String(length=34), nullable=False),
    sa.Column('unique_name', sa.String(length=255), nullable=True),
    sa.Column('nap_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('data_enabled', sa.Boolean(), nullable=False),
    sa.Column('data_limit', sa.Integer(), nullable=False),
    sa.Column('data_metering', sa.String(length=16), nullable=False),
    sa.Column('sms_commands_enabled', sa.Boolean(), nullable=False),
    sa.Column('sms_commands_url', sa.Text(), nullable=True),
    sa.Column('sms_commands_method', sa.String(length=8), nullable=False),
    sa.Column('ip_commands_url', sa.Text(), nullable=True),
    sa.Column('ip_commands_method', sa.String(length=8), nullable=False),
    sa.Column('date_created', simplane.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('date_updated', simplane.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['nap_pk'], ['supersim_network_access_profiles.pk'], name=op.f('fk_supersim_fleets_nap_pk_supersim_network_access_profiles'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_supersim_fleets')),
    sa.UniqueConstraint('account_sid', 'unique_name', name=op.f('uq_supersim_fleets_account_sid_unique_name')),
    sa.UniqueConstraint('sid', name=op.f('uq_supersim_fleets_sid'))
    )
    op.create_index('ix_supersim_fleets_account', 'supersim_fleets', ['account_sid', 'pk'], unique=False)
    op.create_index(op.f('ix_supersim_fleets_nap_pk'), 'supersim_fleets', ['nap_pk'], unique=False)
    op.create_table('supersim_nap_networks',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('nap_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('network_sid', sa.String(length=34), nullable=False),
    sa.ForeignKeyConstraint(['nap_pk'], ['supersim_network_access_profiles.pk'], name=op.f('fk_supersim_nap_networks_nap_pk_supersim_network_access_profiles'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_supersim_nap_networks')),
    sa.UniqueConstraint('nap_pk', 'network_sid', name=op.f('uq_supersim_nap_networks_nap_pk_network_sid'))
    )
    op.create_table('supersim_sims',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('sid', sa.String(length=34), nullable=False),
    sa.Column('account_sid', sa.String(length=34), nullable=True),
    sa.Column('unique_name', sa.String(length=255), nullable=True),
    sa.Column('iccid', sa.String(length=22), nullable=False),
    sa.Column('imsi', sa.String(length=15), nullable=False),
    sa.Column('registration_code', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('scheduled_status', sa.String(length=16), nullable=True),
    sa.Column('callback_url', sa.Text(), nullable=True),
    sa.Column('callback_method', sa.String(length=8), nullable=True),
    sa.Column('fleet_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('ip_address', sa.String(length=45), nullable=True),
    sa.Column('date_ready', simplane.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('date_activated', simplane.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('date_status_changed', simplane.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('date_registered', simplane.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('date_created', simplane.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('date_updated', simplane.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['fleet_pk'], ['supersim_fleets.pk'], name=op.f('fk_supersim_sims_fleet_pk_supersim_fleets'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_supersim_sims')),
    sa.UniqueConstraint('account_sid', 'unique_name', name=op.f('uq_supersim_sims_account_sid_unique_name')),
    sa.UniqueConstraint('iccid', name=op.f('uq_supersim_sims_iccid')),
    sa.UniqueConstraint('imsi', name=op.f('uq_supersim_sims_imsi')),
    sa.UniqueConstraint('sid', name=op.f('uq_supersim_sims_sid'))
    )
    op.create_index('ix_supersim_sims_account', 'supersim_sims', ['account_sid', 'pk'], unique=False)
    op.create_index('ix_supersim_sims_account_fleet', 'supersim_sims', ['account_sid', 'fleet_pk', 'pk'], unique=False)
    op.create_index('ix_supersim_sims_account_status', 'supersim_sims', ['account_sid', 'status', 'pk'], unique=False)
    op.create_index('ix_supersim_sims_ip_address', 'supersim_sims', ['ip_address'], unique=False)
    op.create_index('ix_supersim_sims_status', 'supersim_sims', ['status', 'date_status_changed'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_supersim_sims_status', table_name='supersim_sims')
    op.drop_index('ix_supersim_sims_ip_address', table_name='supersim_sims')
    op.drop_index('ix_supersim_sims_account_status', table_name='supersim_sims')
    op.drop_index('ix_supersim_sims_account_fleet', table_name='supersim_sims')
    op.drop_index('ix_supersim_sims_account', table_name='supersim_sims')
    op.drop_table('supersim_sims')
    op.drop_table('supersim_nap_networks')
    op.drop_index(op.f('ix_supersim_fleets_nap_pk'), table_name='supersim_fleets')
    op.drop_index('ix_supersim_fleets_account', table_name='supersim_fleets')
    op.drop_table('supersim_fleets')
    op.drop_index('ix_supersim_usage_hours_account_hour', table_name='supersim_usage_hours')
    op.drop_table('supersim_usage_hours')
    op.drop_index('ix_supersim_sms_commands_status', table_name='supersim_sms_commands')
    op.drop_index('ix_supersim_sms_commands_account_sim', table_name='supersim_sms_commands')
    op.drop_index('ix_supersim_sms_commands_account', table_name='supersim_sms_commands')
    op.drop_table('supersim_sms_commands')
    op.drop_index('ix_supersim_settings_updates_status', table_name='supersim_settings_updates')
    op.drop_index(op.f('ix_supersim_settings_updates_sim_sid'), table_name='supersim_settings_updates')
    op.drop_index('ix_supersim_settings_updates_account', table_name='supersim_settings_updates')
    op.drop_table('supersim_settings_updates')
    op.drop_index('ix_supersim_network_access_profiles_account', table_name='supersim_network_access_profiles')
    op.drop_table('supersim_network_access_profiles')
    op.drop_index('ix_supersim_ip_commands_status', table_name='supersim_ip_commands')
    op.drop_index('ix_supersim_ip_commands_account_sim', table_name='supersim_ip_commands')
    op.drop_index('ix_supersim_ip_commands_account', table_name='supersim_ip_commands')
    op.drop_table('supersim_ip_commands')
    op.drop_index('ix_supersim_esim_profiles_status', table_name='supersim_esim_profiles')
    op.drop_index('ix_supersim_esim_profiles_account', table_name='supersim_esim_profiles')
    op.drop_table('supersim_esim_profiles')
