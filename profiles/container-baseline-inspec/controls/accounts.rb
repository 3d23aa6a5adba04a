# Accounts: the same rules as container-baseline's accounts.yml, in InSpec syntax.

control 'cb-accounts-01' do
  impact 0.9
  title 'Only root has uid 0'
  desc 'A second uid-0 account is a hidden superuser; any process running as it has full control of the container.'
  desc 'check', 'List passwd entries with uid 0.'
  desc 'fix', 'Remove or renumber every uid-0 account except root.'
  tag nist: %w[AC-6 IA-2], cci: %w[CCI-000366], severity: 'critical'
  describe passwd.where { uid.to_i == 0 } do
    its('users') { should cmp ['root'] }
  end
end

control 'cb-accounts-02' do
  impact 0.9
  title 'No account has an empty password'
  desc 'An empty password field lets anyone who reaches a login prompt or su become that user.'
  desc 'fix', 'Lock the account (passwd -l) or set a strong password.'
  tag nist: %w[IA-5 IA-2], severity: 'critical'
  empty = shadow.where { password.nil? || password.empty? }.users
  empty += passwd.where { password.empty? }.users
  describe 'Accounts with an empty password' do
    subject { empty.uniq }
    it { should be_empty }
  end
end

control 'cb-accounts-03' do
  impact 0.7
  title 'No weak password hashes'
  desc 'DES and MD5 crypt hashes are cracked in minutes; credentials baked into an image must use SHA-512 or yescrypt.'
  tag nist: ['IA-5 (1)'], severity: 'high'
  hashes = shadow.entries.map { |e| [e.user, e.password] }
  hashes += passwd.entries.reject { |e| e.password == 'x' }.map { |e| [e.user, e.password] }
  describe 'Accounts with a DES, MD5 or NTHASH password hash' do
    subject { hashes.select { |_, h| ContainerChecks.weak_hash?(h) }.map(&:first).uniq.sort }
    it { should be_empty }
  end
end

control 'cb-accounts-04' do
  impact 0.5
  title 'System accounts have no login shell'
  desc 'Service accounts need no interactive shell; a shell widens what an attacker can do after taking one over.'
  tag nist: %w[AC-2 CM-6], severity: 'medium'
  offenders = users.where { uid > 0 && uid <= 999 }.entries.reject { |u| ContainerChecks::NOLOGIN_SHELLS.include?(u.shell) }
  describe 'System accounts (uid 1..=999) with a login shell' do
    subject { offenders.map { |u| "#{u.username} (#{u.shell})" } }
    it { should be_empty }
  end
end

control 'cb-accounts-05' do
  impact 0.5
  title 'Account uids are unique'
  desc 'Shared uids make file ownership and audit records ambiguous.'
  tag nist: %w[IA-2 AC-2], severity: 'medium'
  describe passwd.uids do
    it { should_not contain_duplicates }
  end
end

control 'cb-accounts-06' do
  impact 0.7
  title 'Only the root group has gid 0'
  desc 'Another gid-0 group grants root-group file access to its members.'
  tag nist: %w[AC-6], severity: 'high'
  describe etc_group.where(gid: 0) do
    its('names') { should eq ['root'] }
  end
end
